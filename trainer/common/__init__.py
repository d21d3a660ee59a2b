"""What every layer of the trainer uses: atomic file writes and hashes, progress bars."""
