module github.com/pvhub/pvhub

go 1.26
