"""The house-prices problem (the workshop's Part 3): synthetic sales, features, baseline."""
