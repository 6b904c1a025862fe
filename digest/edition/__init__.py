"""The edition, pure: selection, rendering, messages, signed tokens and timing."""
