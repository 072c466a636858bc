"""Operations tooling: backup, restore and reset of the state, image tags, Kubernetes checks, capacity, servers."""
