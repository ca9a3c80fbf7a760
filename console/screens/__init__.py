"""The console's screens: the live main screen, search, an entry's detail, and help."""

from console.screens.detail import DetailScreen
from console.screens.help import HelpScreen
from console.screens.main import MainScreen
from console.screens.search import SearchScreen

__all__ = ["DetailScreen", "HelpScreen", "MainScreen", "SearchScreen"]
