"""Getting events to webhook targets."""
