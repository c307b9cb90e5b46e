"""Session command logs in the gateway's encrypted capture format."""
