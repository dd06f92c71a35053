"""Pieces every stage shares (bottom layer: no import of a higher layer)."""
