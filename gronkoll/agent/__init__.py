"""The PC agent: runs on each school computer, reports its state and obeys signed commands."""
