"""The exceptions every topic raises for the user's input, in one place (topics import this module, not
each other): a data set that is not there, text with characters a model cannot write or read."""
from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError):
    """A data set is not installed or not at the given path; the message says how to get it."""


class UnknownCharactersError(ValueError):
    """Text holds characters that the vocabulary (or the writer's alphabet) does not have."""
