"""The leaderboard is derived from Evaluation rows (rank, published); this app has no tables of its own."""
