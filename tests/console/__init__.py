"""Tests of the Textual console against an in-memory observer."""
