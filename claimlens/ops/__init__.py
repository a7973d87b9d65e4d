"""Operations plumbing shared by the API and the workers: structured logs with a request id, metrics."""
