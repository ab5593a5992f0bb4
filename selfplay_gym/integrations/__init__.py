"""Bridges to other training libraries."""
