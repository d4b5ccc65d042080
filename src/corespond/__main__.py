from corespond.cli import main

main()
