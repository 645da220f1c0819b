"""The Lite profile: the whole platform on one machine, no cloud and no Docker."""
