"""Frame sources by URI and the pacing/reconnect logic around them (board-side: no torch)."""
