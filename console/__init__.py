"""The terminal console, and only that: a Textual app over an `Observer` that `launch` opens."""
