module github.com/acme/shop/v2

go 1.21

replace github.com/acme/lib => ../lib
