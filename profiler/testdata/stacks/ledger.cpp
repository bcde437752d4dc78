// C++ at -O2 without frame pointers: main -> app::Ledger::settle (a
// virtual call) -> std::sort's introsort (templates, inlined in part) ->
// app::byAmount, the comparator, through a function pointer. Prints the
// rounds done when its time is up.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

namespace app {

struct Entry {
	long amount;
	long id;
};

__attribute__((noinline)) bool byAmount(const Entry &a, const Entry &b) {
	return a.amount < b.amount || (a.amount == b.amount && a.id < b.id);
}

struct Book {
	virtual ~Book() {}
	virtual long settle(std::vector<Entry> &v) = 0;
};

struct Ledger : Book {
	__attribute__((noinline)) long settle(std::vector<Entry> &v) override {
		std::sort(v.begin(), v.end(), byAmount);
		return v[v.size() / 2].amount;
	}
};

} // namespace app

app::Book *volatile book; // volatile: the call stays virtual

int main(int argc, char **argv) {
	std::time_t end = std::time(nullptr) + (argc > 1 ? std::atoi(argv[1]) : 60);
	std::vector<app::Entry> v(4000);
	book = new app::Ledger;
	unsigned long seed = 1, rounds = 0;
	long sum = 0;
	while (std::time(nullptr) < end) {
		for (auto &e : v) {
			seed = seed * 6364136223846793005UL + 1442695040888963407UL;
			e.amount = (long)(seed >> 44);
			e.id = (long)(seed & 0xffff);
		}
		sum += book->settle(v);
		rounds++;
	}
	std::printf("%lu\n", rounds + (sum == 42));
	return 0;
}
