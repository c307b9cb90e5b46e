"""Reading Ansible inventory sources the way Ansible reads them: files, directories, scripts, ranges, patterns.

`graph` holds the groups and hosts; `ini`, `yamlformat` and `script` fill it from one source each;
`sources` picks the parser for every `-i` (directories too) and finds group_vars/host_vars; `patterns`
is `--limit`; `listing` prints what `ansible-inventory` would.
"""
