"""The papers' own numbers (tables as printed), claims and the variants each notebook trains."""
