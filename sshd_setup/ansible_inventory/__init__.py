"""Reading Ansible inventory sources the way Ansible reads them: files, directories, scripts, ranges, patterns.

`graph` holds the groups and hosts (Ansible's InventoryData); `ini`, `yamlformat` and `script` fill it from
one source each, with `ranges` for `web[01:10]` and `textfiles` for bounded, strict reading; `sources` picks
the parser for every `-i` (directories too) and finds group_vars/host_vars; `patterns` is `--limit`;
`listing` prints what `ansible-inventory --list/--graph` would. Merging variables into HostEntry is
sshd_setup.inventory's job.
"""
