// The objects linked with this file each include one public header on its own; building this
// test is the check.
int main() { return 0; }
