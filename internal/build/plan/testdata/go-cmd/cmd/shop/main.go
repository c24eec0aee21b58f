// Command shop.
package main

func main() {}
