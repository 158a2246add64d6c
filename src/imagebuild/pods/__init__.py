"""The pod side on the host: one Target interface over local and RunPod pods, the
lifecycle rules (save before stop/terminate), save over SSH and its report."""
