"""One page per step of the studio."""
