"""Collect: readers that turn outside formats into validated STIX versions for the store."""
