from lngate.cli import main

main()
