from passport_sync.cli import main

main()
