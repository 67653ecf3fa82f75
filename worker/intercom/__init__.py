"""Intercom: the REST client, its error tree, and the fake Intercom server."""
