"""Small apps that host one screen each, for pilot and snapshot tests."""
