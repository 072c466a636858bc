"""How models meet traffic: the API, routing strategies, hot reload, the prediction log and the rollout."""
