"""The one exception the stack commands turn into a single line on stderr."""


class StackError(Exception):
    """A problem the user can act on: missing tool, port taken, server that does not answer."""
