package bench

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Residency is which bytes of a running Go program's executable are
// resident, by ELF section and by Go package: what ProcMem.Exe is made
// of. Text and data are attributed by ELF symbol, type descriptors by
// DWARF's runtime-type attribute, and the pc table (.gopclntab) by
// parsing it: each function's _func record, name, pc-value tables and
// funcdata go to the function's package. Bytes with no owner (strings,
// the file and CU tables, padding) are under OtherPackage. Only
// resident pages count, so with fault-around a package's figure includes
// neighbours of what ran; compare programs or builds, not single
// packages of one run.
type Residency struct {
	Total    int64            // resident bytes in the executable's mappings
	Sections map[string]int64 // by ELF section
	Packages map[string]int64 // by Go package; sums to Total
}

// OtherPackage holds the resident bytes no package owns.
const OtherPackage = "<other>"

// ReadResidency reads pid's resident executable pages from
// /proc/PID/pagemap and attributes them with the executable's symbols,
// DWARF and pc table (a binary built with -ldflags=-s -w has only the pc
// table: most goes to OtherPackage).
func ReadResidency(pid int) (Residency, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	exe, err := os.Readlink(dir + "/exe")
	if err != nil {
		return Residency{}, err
	}
	owners, sections, err := exeOwners(dir + "/exe")
	if err != nil {
		return Residency{}, fmt.Errorf("%s: %w", exe, err)
	}
	pages, err := residentPages(dir, exe)
	if err != nil {
		return Residency{}, err
	}
	res := Residency{Sections: map[string]int64{}, Packages: map[string]int64{}}
	res.Total = int64(len(pages)) * pageSize
	resident := func(lo, hi uint64) int64 { // resident bytes of [lo, hi)
		var n int64
		for p := lo &^ (pageSize - 1); p < hi; p += pageSize {
			if pages[p] {
				n += int64(min(hi, p+pageSize) - max(lo, p))
			}
		}
		return n
	}
	for _, s := range sections {
		if n := resident(s.lo, s.hi); n > 0 {
			res.Sections[s.name] = n
		}
	}
	// The first owner of a byte keeps it: owners are sorted by start and
	// clipped where an earlier one ends.
	var owned int64
	var end uint64
	for _, o := range owners {
		lo := max(o.lo, end)
		if lo >= o.hi {
			continue
		}
		if n := resident(lo, o.hi); n > 0 {
			res.Packages[o.pkg] += n
			owned += n
		}
		end = o.hi
	}
	res.Packages[OtherPackage] += res.Total - owned
	return res, nil
}

const pageSize = 4096

// residentPages returns the addresses of the resident pages of the
// mappings of exe in the process whose /proc directory is dir.
func residentPages(dir, exe string) (map[uint64]bool, error) {
	maps, err := os.ReadFile(dir + "/maps")
	if err != nil {
		return nil, err
	}
	pm, err := os.Open(dir + "/pagemap")
	if err != nil {
		return nil, err
	}
	defer pm.Close()
	pages := map[uint64]bool{}
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || strings.Join(f[5:], " ") != exe {
			continue
		}
		var lo, hi uint64
		if _, err := fmt.Sscanf(f[0], "%x-%x", &lo, &hi); err != nil {
			return nil, fmt.Errorf("%s/maps: %q: %w", dir, line, err)
		}
		n := (hi - lo) / pageSize
		buf := make([]byte, n*8)
		if _, err := pm.ReadAt(buf, int64(lo/pageSize*8)); err != nil {
			return nil, fmt.Errorf("%s/pagemap: %w", dir, err)
		}
		for i := range n {
			if binary.LittleEndian.Uint64(buf[i*8:])>>63 == 1 { // present
				pages[lo+i*pageSize] = true
			}
		}
	}
	return pages, nil
}

// span is [lo, hi) of the address space, owned by package pkg or named.
type span struct {
	lo, hi uint64
	pkg    string
	name   string
}

// maxSpan bounds a span whose end is guessed (the next one's start): a
// larger gap is not the same object's.
const maxSpan = 64 << 10

// exeOwners returns the spans of the executable at path owned by
// packages, sorted by start, and its loaded sections.
func exeOwners(path string) (owners, sections []span, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Addr != 0 {
			sections = append(sections, span{lo: s.Addr, hi: s.Addr + s.Size, name: s.Name})
		}
	}
	syms, err := f.Symbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return nil, nil, err
	}
	addr := map[string]uint64{}
	for _, s := range syms {
		addr[s.Name] = s.Value
		if s.Size > 0 && s.Name != "go:func.*" && s.Name != "runtime.findfunctab" { // both split below or left unowned
			owners = append(owners, span{lo: s.Value, hi: s.Value + s.Size, pkg: symbolPackage(s.Name)})
		}
	}
	if d, err := f.DWARF(); err == nil {
		owners = append(owners, typeSpans(d, addr["runtime.types"], addr["go:string.*"])...)
	}
	pcln, err := pclnSpans(f, addr["go:func.*"])
	if err != nil {
		return nil, nil, fmt.Errorf(".gopclntab: %w", err)
	}
	owners = append(owners, pcln...)
	sort.Slice(owners, func(i, j int) bool { return owners[i].lo < owners[j].lo })
	return owners, sections, nil
}

// typeSpans returns the type descriptors named in DWARF (the attribute
// DW_AT_go_runtime_type is an offset from runtime.types), each up to the
// next one, and no further than end (the strings after them).
func typeSpans(d *dwarf.Data, types, end uint64) []span {
	const goRuntimeType = 0x2904
	var out []span
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if off, ok := e.Val(goRuntimeType).(uint64); ok && off != 0 {
			name, _ := e.Val(dwarf.AttrName).(string)
			out = append(out, span{lo: types + off, pkg: symbolPackage(name)})
		}
	}
	return closeSpans(out, end)
}

// closeSpans sorts spans whose ends are unknown and ends each at the next
// one's start, at end, or maxSpan after its start.
func closeSpans(s []span, end uint64) []span {
	sort.Slice(s, func(i, j int) bool { return s[i].lo < s[j].lo })
	for i := range s {
		hi := end
		if i+1 < len(s) {
			hi = s[i+1].lo
		}
		if hi < s[i].lo || hi-s[i].lo > maxSpan {
			hi = s[i].lo + 16
		}
		s[i].hi = hi
	}
	return s
}

// pclnSpans attributes the pc table (Go 1.20+ layout, runtime.pcHeader
// and runtime._func) to the packages of its functions.
func pclnSpans(f *elf.File, gofunc uint64) ([]span, error) {
	sec := f.Section(".gopclntab")
	if sec == nil {
		return nil, errors.New("none")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if len(data) < 72 || le.Uint32(data) != 0xfffffff1 || data[7] != 8 {
		return nil, errors.New("not the Go 1.20+ layout of a 64-bit binary")
	}
	header := func(i int) uint64 { return le.Uint64(data[8+8*i:]) }
	nfunc := int(header(0))
	funcnames, pctab, pcln := header(3), header(6), header(7)
	base := sec.Addr
	ftab := data[pcln:]
	out := []span{{lo: base + pcln, hi: base + pcln + uint64(nfunc+1)*8, pkg: "<functab>"}}
	var tables, funcdata []span // ends unknown
	for i := range nfunc {
		off := uint64(le.Uint32(ftab[8*i+4:]))
		fn := ftab[off:] // runtime._func
		name := data[funcnames+uint64(le.Uint32(fn[4:])):]
		if n := strings.IndexByte(string(name[:min(len(name), 4096)]), 0); n >= 0 {
			name = name[:n]
		}
		pkg := symbolPackage(string(name))
		nameAt := base + funcnames + uint64(le.Uint32(fn[4:]))
		npcdata, nfuncdata := le.Uint32(fn[28:]), uint32(fn[43])
		out = append(out,
			span{lo: nameAt, hi: nameAt + uint64(len(name)) + 1, pkg: pkg},
			span{lo: base + pcln + off, hi: base + pcln + off + 44 + 4*uint64(npcdata+nfuncdata), pkg: pkg})
		for _, at := range []int{16, 20, 24} { // pcsp, pcfile, pcln
			if o := le.Uint32(fn[at:]); o != 0 {
				tables = append(tables, span{lo: base + pctab + uint64(o), pkg: pkg})
			}
		}
		for j := range npcdata {
			if o := le.Uint32(fn[44+4*j:]); o != 0 {
				tables = append(tables, span{lo: base + pctab + uint64(o), pkg: pkg})
			}
		}
		for j := range nfuncdata {
			if o := le.Uint32(fn[44+4*npcdata+4*j:]); o != ^uint32(0) && gofunc != 0 {
				funcdata = append(funcdata, span{lo: gofunc + uint64(o), pkg: pkg})
			}
		}
	}
	out = append(out, closeSpans(tables, base+pcln)...)
	return append(out, closeSpans(funcdata, sec.Addr+sec.Size)...), nil
}

// symbolPackage returns the import path of the package of a symbol or
// type name: "github.com/a/b.(*T).M" → "github.com/a/b",
// "type:*net/http.Request" → "net/http". Names of unnamed types
// (map[...], func(...), struct {...}) are "<composite>".
func symbolPackage(name string) string {
	for _, p := range []string{"type:", "go:itab.", "go:string.", "go:link."} {
		name = strings.TrimPrefix(name, p)
	}
	name = strings.TrimLeft(name, "*[]")
	for _, p := range []string{"map[", "func(", "struct {", "interface {", "chan "} {
		if strings.HasPrefix(name, p) {
			return "<composite>"
		}
	}
	if i := strings.IndexAny(name, "[,"); i >= 0 { // generic arguments
		name = name[:i]
	}
	slash := strings.LastIndexByte(name, '/')
	if dot := strings.IndexByte(name[slash+1:], '.'); dot >= 0 {
		return name[:slash+1+dot]
	}
	return name
}
