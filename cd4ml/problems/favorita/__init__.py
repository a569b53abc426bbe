"""The Favorita grocery sales-forecasting problem: its data, features and products."""
