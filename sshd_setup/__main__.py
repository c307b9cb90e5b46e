from sshd_setup.cli import main

main()
