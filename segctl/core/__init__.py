"""The pure core of segctl: no OpenFlow framework is imported anywhere below here."""
