"""The web API's shared layer: its JSON error format, request guard and strict field types.

Every app may import it; it imports no app.
"""
