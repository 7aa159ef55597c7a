set terminal pngcairo size 1600,700 font ',10'
set output '/work/main/bench/results/bench-20261202-024252-542204172b28-throughput.png'
set title 'Throughput, median of 3 (msgs/s, log scale; missing bar = n/a)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set termoption noenhanced
set logscale y
set yrange [1e4:*]
set grid ytics
set ylabel 'distinct messages / s'
set xtics rotate by -25
set key outside right
set datafile missing '?'
$data << EOD
cell "ackring at-least-once" "bare SPSC ring (floor)" "unix socket SEQPACKET" "pipe (framed stream)" "POSIX mq" "boost::interprocess mq"
"1->1 16B" 13277562 10382935 450737 514029 333837 2449077
"1->1 64B" 12843724 11000931 437996 489977 321249 2034645
"1->1 1024B" 1452751 2972521 412011 453645 335072 987238
"1->1 4096B" 1015761 2057252 341613 394838 273712 561558
"2->1 64B" 10271171 ? 445593 513431 288846 2293374
"1->2 competing 64B" 12252152 ? 453914 ? 326760 1979443
"1->2 groups 64B" 9189850 1011832 205261 170137 128656 2075808
EOD
plot for [i=2:7] $data using i:xtic(1) title columnhead(i)
