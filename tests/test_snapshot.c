#include "analysis_fixtures.h"
int main(void) { return 0; }
