-- The sites of every property-scoped token, loaded with the tokens.
SELECT id, sites FROM api_token_scopes FINAL
