"""Chain sync: a declarative job that keeps dataset versions of a chain's history up to date."""
