"""Offline CPU face-swap engine that serves fal's queue protocol (see ARCHITECTURE.md)."""
