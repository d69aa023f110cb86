-- Dead letters stored since a time.
-- param: since DateTime = '2024-03-04 05:00:00'
SELECT count() FROM dead_letters WHERE ts >= {since:DateTime}
