"""Ranking (pure functions), re-ranking a phase, exports and the public leaderboard pages."""
