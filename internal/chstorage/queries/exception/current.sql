-- The current register: the newest record of every exception (closed ones
-- too), optionally of those whose newest version is of one site.
-- param: site String = 's1'
SELECT argMax(record, version) AS record FROM exceptions
GROUP BY id
/*if site*/ HAVING argMax(site_id, version) = {site:String} /*end*/
ORDER BY id
