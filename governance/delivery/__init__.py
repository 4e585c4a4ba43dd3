"""Messages sent to people and channels, remembered so they can be updated."""
