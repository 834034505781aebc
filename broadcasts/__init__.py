"""Broadcast campaigns: audiences, scheduling and delivery (not yet implemented)."""
