"""SMPLify-style fitting (the optimisation baseline of ScoreHMR)."""
