-- The head of every chain.
SELECT chain, max(seq) AS head_seq, argMax(hash, seq) AS head_hash FROM audit_log GROUP BY chain
