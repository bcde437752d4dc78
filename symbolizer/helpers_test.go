package symbolizer

import (
	"log/slog"
	"reflect"
	"strconv"
)

func funcPC(f any) uint64 { return uint64(reflect.ValueOf(f).Pointer()) }

func itoa(i int) string { return strconv.Itoa(i) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
