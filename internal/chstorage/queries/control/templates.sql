-- The newest stored version of every changed role template.
SELECT role, argMax(template, version) FROM control_templates GROUP BY role
