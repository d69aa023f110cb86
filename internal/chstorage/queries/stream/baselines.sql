-- The saved detector baselines (the newest of each subject).
SELECT subject_id, state FROM detect_baselines FINAL
