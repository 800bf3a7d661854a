/** A country of the simulated `/tables/countries` table. */
export interface SimCountry {
  /** MDIC code, 3 digits. */
  id: string;
  /** Portuguese name as `/tables/countries` returns it (a few keep the API's leading space). */
  text: string;
  /** English name used in `/general` rows when `language=en`. */
  en?: string;
  /** ISO 3166 numeric and alpha-3 codes for `/tables/countries/{id}`. */
  isoN3?: string;
  isoA3?: string;
  /** Relative trade weight (China 1.0). 0 for partners that never trade. */
  weight: number;
}

/** An NCM of the simulated `/tables/ncm` table. */
export interface SimNcm {
  coNcm: string;
  /** Portuguese description. */
  pt: string;
  /** English description (`language=en`). */
  en: string;
  unit: string;
  /** Typical monthly export FOB with the main partner, US$. */
  scale: number;
  /** Unit price, US$ per kg (derives KG from FOB). */
  usdPerKg: number;
}

// Codes checked against MDIC PAIS.csv (docs/comexstat-api.md §7), plus the special partners.
const REAL: SimCountry[] = [
  { id: '160', text: 'China', en: 'China', isoN3: '156', isoA3: 'CHN', weight: 1 },
  { id: '249', text: 'Estados Unidos', en: 'United States', isoN3: '840', isoA3: 'USA', weight: 0.55 },
  { id: '063', text: 'Argentina', en: 'Argentina', isoN3: '032', isoA3: 'ARG', weight: 0.3 },
  { id: '573', text: 'Países Baixos (Holanda)', en: 'Netherlands', isoN3: '528', isoA3: 'NLD', weight: 0.25 },
  { id: '245', text: 'Espanha', en: 'Spain', isoN3: '724', isoA3: 'ESP', weight: 0.18 },
  { id: '741', text: 'Singapura', en: 'Singapore', isoN3: '702', isoA3: 'SGP', weight: 0.17 },
  { id: '493', text: 'México', en: 'Mexico', isoN3: '484', isoA3: 'MEX', weight: 0.16 },
  { id: '158', text: 'Chile', en: 'Chile', isoN3: '152', isoA3: 'CHL', weight: 0.15 },
  { id: '149', text: 'Canadá', en: 'Canada', isoN3: '124', isoA3: 'CAN', weight: 0.12 },
  { id: '023', text: 'Alemanha', en: 'Germany', isoN3: '276', isoA3: 'DEU', weight: 0.14 },
  { id: '361', text: 'Índia', en: 'India', isoN3: '356', isoA3: 'IND', weight: 0.13 },
  { id: '399', text: 'Japão', en: 'Japan', isoN3: '392', isoA3: 'JPN', weight: 0.12 },
  { id: '190', text: 'Coreia do Sul', en: 'South Korea', isoN3: '410', isoA3: 'KOR', weight: 0.1 },
  { id: '386', text: 'Itália', en: 'Italy', isoN3: '380', isoA3: 'ITA', weight: 0.09 },
  { id: '087', text: 'Bélgica', en: 'Belgium', isoN3: '056', isoA3: 'BEL', weight: 0.08 },
  { id: '053', text: 'Arábia Saudita', en: 'Saudi Arabia', isoN3: '682', isoA3: 'SAU', weight: 0.08 },
  { id: '858', text: 'Vietnã', en: 'Vietnam', isoN3: '704', isoA3: 'VNM', weight: 0.07 },
  { id: '105', text: 'Brasil', en: 'Brazil', isoN3: '076', isoA3: 'BRA', weight: 0.01 },
];

// Non-countries the API lists as partners (docs/comexstat-api.md §4). Their codes are illustrative.
const SPECIAL: SimCountry[] = [
  { id: '994', text: 'A Designar', en: 'To be designated', weight: 0.02 },
  { id: '995', text: 'Bancos Centrais', en: 'Central Banks', weight: 0.01 },
  { id: '997', text: 'Provisão de Navios e Aeronaves', en: 'Ship and aircraft provisions', weight: 0.02 },
];

// Illustrative fillers so the table has the API's 281 rows: real country names, synthetic codes
// (600 upward, skipping the real ones above).
const FILLER_NAMES = [
  'Afeganistão',
  'África do Sul',
  'Albânia',
  'Angola',
  'Argélia',
  'Armênia',
  'Austrália',
  'Áustria',
  'Bangladesh',
  'Bolívia',
  'Bulgária',
  'Camarões',
  'Catar',
  'Cazaquistão',
  'Colômbia',
  'Costa Rica',
  'Croácia',
  'Cuba',
  'Dinamarca',
  'Egito',
  'Emirados Árabes Unidos',
  'Equador',
  'Eslováquia',
  'Eslovênia',
  'Estônia',
  'Filipinas',
  'Finlândia',
  'França',
  'Gana',
  'Grécia',
  'Guatemala',
  'Hungria',
  'Indonésia',
  'Irã',
  'Iraque',
  'Irlanda',
  'Israel',
  'Jordânia',
  'Kuwait',
  'Líbano',
  'Malásia',
  'Marrocos',
  'Nigéria',
  'Noruega',
  'Nova Zelândia',
  'Omã',
  'Paquistão',
  'Panamá',
  'Paraguai',
  'Peru',
  'Polônia',
  'Portugal',
  'Quênia',
  'Reino Unido',
  'República Dominicana',
  'Romênia',
  'Rússia',
  'Senegal',
  'Suécia',
  'Suíça',
  'Tailândia',
  'Taiwan (Formosa)',
  'Tunísia',
  'Turquia',
  'Ucrânia',
  'Uruguai',
  'Venezuela',
];

function buildCountries(): SimCountry[] {
  const out: SimCountry[] = [...REAL, ...SPECIAL];
  const used = new Set(out.map((c) => c.id));
  let code = 600;
  for (let i = 0; out.length < 281; i++) {
    const base = FILLER_NAMES[i % FILLER_NAMES.length] as string;
    const round = Math.floor(i / FILLER_NAMES.length);
    const name = round === 0 ? base : `${base} (território ${round})`;
    while (used.has(String(code))) code++;
    used.add(String(code));
    // The real table has a few names with a leading space; keep the quirk.
    out.push({ id: String(code), text: (i % 23 === 5 ? ' ' : '') + name, weight: round === 0 ? 0.03 : 0 });
  }
  return out;
}

/** The 281 rows of the simulated countries table. */
export const SIM_COUNTRIES: readonly SimCountry[] = buildCountries();

/**
 * The simulated NCM table (50 lines). The first 18 codes are checked against MDIC NCM.csv
 * (docs/comexstat-api.md §7); the rest are common Brazilian trade lines, descriptions abridged.
 */
export const SIM_NCMS: readonly SimNcm[] = [
  {
    coNcm: '27090010',
    pt: 'Óleos brutos de petróleo',
    en: 'Crude petroleum oils',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 2.5e9,
    usdPerKg: 0.55,
  },
  {
    coNcm: '12019000',
    pt: 'Soja, mesmo triturada, exceto para semeadura',
    en: 'Soybeans, not for sowing',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 4e9,
    usdPerKg: 0.4,
  },
  {
    coNcm: '26011100',
    pt: 'Minérios de ferro e seus concentrados, não aglomerados',
    en: 'Iron ore, non-agglomerated',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 2e9,
    usdPerKg: 0.1,
  },
  {
    coNcm: '26011200',
    pt: 'Minérios de ferro e seus concentrados, aglomerados',
    en: 'Iron ore, agglomerated',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 4e8,
    usdPerKg: 0.13,
  },
  {
    coNcm: '09011110',
    pt: 'Café não torrado, não descafeinado, em grão',
    en: 'Green coffee beans',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 6e8,
    usdPerKg: 4.7,
  },
  {
    coNcm: '02023000',
    pt: 'Carnes desossadas de bovino, congeladas',
    en: 'Frozen boneless beef',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 7e8,
    usdPerKg: 5,
  },
  {
    coNcm: '17011400',
    pt: 'Outros açúcares de cana, em bruto',
    en: 'Other raw cane sugar',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 9e8,
    usdPerKg: 0.45,
  },
  {
    coNcm: '47032900',
    pt: 'Pastas químicas de madeira não conífera, branqueadas',
    en: 'Bleached non-conifer chemical pulp',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 5e8,
    usdPerKg: 0.55,
  },
  {
    coNcm: '10059010',
    pt: 'Milho em grão, exceto para semeadura',
    en: 'Maize grain, not for sowing',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 6e8,
    usdPerKg: 0.22,
  },
  {
    coNcm: '23040090',
    pt: 'Bagaços e outros resíduos da extração do óleo de soja',
    en: 'Soybean meal and residues',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 5e8,
    usdPerKg: 0.42,
  },
  {
    coNcm: '23040010',
    pt: 'Farinhas e pellets da extração do óleo de soja',
    en: 'Soybean flour and pellets',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 1.2e8,
    usdPerKg: 0.45,
  },
  {
    coNcm: '02071400',
    pt: 'Pedaços e miudezas de galos/galinhas, congelados',
    en: 'Frozen chicken cuts and offal',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 5e8,
    usdPerKg: 1.9,
  },
  {
    coNcm: '52010020',
    pt: 'Algodão simplesmente debulhado, não cardado nem penteado',
    en: 'Cotton, ginned, not carded',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 4e8,
    usdPerKg: 1.7,
  },
  {
    coNcm: '15071000',
    pt: 'Óleo de soja, em bruto, mesmo degomado',
    en: 'Crude soybean oil',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 2e8,
    usdPerKg: 0.95,
  },
  {
    coNcm: '27101922',
    pt: 'Fuel-oil',
    en: 'Fuel oil',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 4e8,
    usdPerKg: 0.45,
  },
  {
    coNcm: '24012030',
    pt: 'Fumo não manufaturado, tipo Virginia, curado em estufa',
    en: 'Virginia flue-cured tobacco',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 1.5e8,
    usdPerKg: 5.5,
  },
  {
    coNcm: '71081310',
    pt: 'Ouro em barras, fios e perfis de seção maciça',
    en: 'Gold bars',
    unit: 'GRAMA LIQUIDO',
    scale: 3e8,
    usdPerKg: 60000,
  },
  {
    coNcm: '20091200',
    pt: 'Suco de laranja, não congelado, Brix <= 20',
    en: 'Orange juice, not frozen',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 1.2e8,
    usdPerKg: 0.9,
  },
  {
    coNcm: '02013000',
    pt: 'Carnes desossadas de bovino, frescas ou refrigeradas',
    en: 'Fresh boneless beef',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 1e8,
    usdPerKg: 7,
  },
  {
    coNcm: '02071200',
    pt: 'Carnes de galos/galinhas, não cortadas em pedaços, congeladas',
    en: 'Frozen whole chickens',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 1.5e8,
    usdPerKg: 1.7,
  },
  {
    coNcm: '02032900',
    pt: 'Outras carnes de suíno, congeladas',
    en: 'Other frozen pork',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 1.5e8,
    usdPerKg: 2.4,
  },
  {
    coNcm: '09012100',
    pt: 'Café torrado, não descafeinado',
    en: 'Roasted coffee',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 1e7,
    usdPerKg: 9,
  },
  {
    coNcm: '15079011',
    pt: 'Óleo de soja refinado, em recipientes de até 5 l',
    en: 'Refined soybean oil, small containers',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 2e7,
    usdPerKg: 1.2,
  },
  {
    coNcm: '17019900',
    pt: 'Outros açúcares de cana, refinados',
    en: 'Other refined cane sugar',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 2e8,
    usdPerKg: 0.55,
  },
  {
    coNcm: '22071000',
    pt: 'Álcool etílico não desnaturado, teor >= 80%',
    en: 'Undenatured ethyl alcohol',
    unit: 'LITRO',
    scale: 8e7,
    usdPerKg: 0.7,
  },
  {
    coNcm: '26030090',
    pt: 'Outros minérios de cobre e seus concentrados',
    en: 'Other copper ores',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 2e8,
    usdPerKg: 2.2,
  },
  {
    coNcm: '26080090',
    pt: 'Outros minérios de zinco',
    en: 'Other zinc ores',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 2e7,
    usdPerKg: 0.9,
  },
  {
    coNcm: '28182010',
    pt: 'Alumina calcinada',
    en: 'Calcined alumina',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 1.2e8,
    usdPerKg: 0.38,
  },
  {
    coNcm: '44071100',
    pt: 'Madeira de coníferas, de pinheiro, serrada',
    en: 'Sawn pine wood',
    unit: 'METRO CUBICO',
    scale: 6e7,
    usdPerKg: 0.35,
  },
  {
    coNcm: '47031100',
    pt: 'Pastas químicas de madeira conífera, não branqueadas',
    en: 'Unbleached conifer chemical pulp',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 2e7,
    usdPerKg: 0.5,
  },
  {
    coNcm: '72071200',
    pt: 'Produtos semimanufaturados de ferro ou aço não ligado',
    en: 'Semi-finished iron or non-alloy steel',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 2.5e8,
    usdPerKg: 0.55,
  },
  {
    coNcm: '72024100',
    pt: 'Ferrocromo com teor de carbono > 4%',
    en: 'Ferro-chromium, > 4% carbon',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 1e7,
    usdPerKg: 1.4,
  },
  {
    coNcm: '76011000',
    pt: 'Alumínio não ligado, em formas brutas',
    en: 'Unwrought aluminium, not alloyed',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 5e7,
    usdPerKg: 2.4,
  },
  {
    coNcm: '84295199',
    pt: 'Outras carregadoras de carregamento frontal',
    en: 'Other front-end loaders',
    unit: 'UNIDADE',
    scale: 3e7,
    usdPerKg: 12,
  },
  {
    coNcm: '87032310',
    pt: 'Automóveis com motor de cilindrada 1.500-3.000 cm3',
    en: 'Passenger cars 1,500-3,000 cc',
    unit: 'UNIDADE',
    scale: 6e7,
    usdPerKg: 14,
  },
  {
    coNcm: '87089990',
    pt: 'Outras partes e acessórios para veículos automóveis',
    en: 'Other motor vehicle parts',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 5e7,
    usdPerKg: 8,
  },
  {
    coNcm: '88024010',
    pt: 'Aviões e veículos aéreos, peso vazio > 15.000 kg',
    en: 'Aeroplanes, unladen weight > 15,000 kg',
    unit: 'UNIDADE',
    scale: 2e8,
    usdPerKg: 1500,
  },
  {
    coNcm: '10019900',
    pt: 'Outros trigos e misturas de trigo com centeio',
    en: 'Other wheat and meslin',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 1e8,
    usdPerKg: 0.27,
  },
  {
    coNcm: '31042090',
    pt: 'Outros cloretos de potássio',
    en: 'Other potassium chloride',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 3e8,
    usdPerKg: 0.35,
  },
  {
    coNcm: '31021010',
    pt: 'Ureia com teor de nitrogênio > 45%',
    en: 'Urea, nitrogen > 45%',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 2.5e8,
    usdPerKg: 0.4,
  },
  {
    coNcm: '31053000',
    pt: 'Hidrogeno-ortofosfato de diamônio',
    en: 'Diammonium hydrogenorthophosphate',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 1e8,
    usdPerKg: 0.6,
  },
  {
    coNcm: '27011200',
    pt: 'Hulha betuminosa, não aglomerada',
    en: 'Bituminous coal, not agglomerated',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 2e8,
    usdPerKg: 0.15,
  },
  {
    coNcm: '27111100',
    pt: 'Gás natural, liquefeito',
    en: 'Liquefied natural gas',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 1e8,
    usdPerKg: 0.6,
  },
  {
    coNcm: '27101259',
    pt: 'Outras gasolinas, exceto para aviação',
    en: 'Other motor spirit',
    unit: 'LITRO',
    scale: 1.5e8,
    usdPerKg: 0.8,
  },
  {
    coNcm: '27101921',
    pt: 'Gasóleo (óleo diesel)',
    en: 'Gas oil (diesel)',
    unit: 'LITRO',
    scale: 6e8,
    usdPerKg: 0.75,
  },
  {
    coNcm: '30049099',
    pt: 'Outros medicamentos em doses',
    en: 'Other medicaments in doses',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 1.5e8,
    usdPerKg: 90,
  },
  {
    coNcm: '85176277',
    pt: 'Outros aparelhos de comutação para telefonia',
    en: 'Other switching apparatus',
    unit: 'UNIDADE',
    scale: 6e7,
    usdPerKg: 70,
  },
  {
    coNcm: '85423190',
    pt: 'Outros circuitos integrados eletrônicos, processadores',
    en: 'Other electronic integrated processors',
    unit: 'UNIDADE',
    scale: 8e7,
    usdPerKg: 900,
  },
  {
    coNcm: '38089199',
    pt: 'Outros inseticidas',
    en: 'Other insecticides',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 6e7,
    usdPerKg: 11,
  },
  {
    coNcm: '29291010',
    pt: 'Diisocianato de tolueno',
    en: 'Toluene diisocyanate',
    unit: 'QUILOGRAMA LIQUIDO',
    scale: 2e7,
    usdPerKg: 2.2,
  },
];

/** Brazilian states for `/tables/uf`: 27 units plus the API's special codes (34 rows). */
export const SIM_UFS: readonly { id: string; uf: string; text: string; region: string }[] = [
  ['11', 'RO', 'Rondônia', 'REGIAO NORTE'],
  ['12', 'AC', 'Acre', 'REGIAO NORTE'],
  ['13', 'AM', 'Amazonas', 'REGIAO NORTE'],
  ['14', 'RR', 'Roraima', 'REGIAO NORTE'],
  ['15', 'PA', 'Pará', 'REGIAO NORTE'],
  ['16', 'AP', 'Amapá', 'REGIAO NORTE'],
  ['17', 'TO', 'Tocantins', 'REGIAO NORTE'],
  ['21', 'MA', 'Maranhão', 'REGIAO NORDESTE'],
  ['22', 'PI', 'Piauí', 'REGIAO NORDESTE'],
  ['23', 'CE', 'Ceará', 'REGIAO NORDESTE'],
  ['24', 'RN', 'Rio Grande do Norte', 'REGIAO NORDESTE'],
  ['25', 'PB', 'Paraíba', 'REGIAO NORDESTE'],
  ['26', 'PE', 'Pernambuco', 'REGIAO NORDESTE'],
  ['27', 'AL', 'Alagoas', 'REGIAO NORDESTE'],
  ['28', 'SE', 'Sergipe', 'REGIAO NORDESTE'],
  ['29', 'BA', 'Bahia', 'REGIAO NORDESTE'],
  ['31', 'MG', 'Minas Gerais', 'REGIAO SUDESTE'],
  ['32', 'ES', 'Espírito Santo', 'REGIAO SUDESTE'],
  ['33', 'RJ', 'Rio de Janeiro', 'REGIAO SUDESTE'],
  ['35', 'SP', 'São Paulo', 'REGIAO SUDESTE'],
  ['41', 'PR', 'Paraná', 'REGIAO SUL'],
  ['42', 'SC', 'Santa Catarina', 'REGIAO SUL'],
  ['43', 'RS', 'Rio Grande do Sul', 'REGIAO SUL'],
  ['50', 'MS', 'Mato Grosso do Sul', 'REGIAO CENTRO OESTE'],
  ['51', 'MT', 'Mato Grosso', 'REGIAO CENTRO OESTE'],
  ['52', 'GO', 'Goiás', 'REGIAO CENTRO OESTE'],
  ['53', 'DF', 'Distrito Federal', 'REGIAO CENTRO OESTE'],
  ['54', 'ND', 'Não Declarada', 'NAO DECLARADA'],
  ['55', 'CB', 'Consumo de Bordo', 'NAO DECLARADA'],
  ['56', 'MN', 'Mercadoria Nacionalizada', 'NAO DECLARADA'],
  ['57', 'RE', 'Reexportação', 'NAO DECLARADA'],
  ['58', 'ED', 'Estados diversos - Café', 'NAO DECLARADA'],
  ['59', 'ZN', 'Zona Não Declarada', 'NAO DECLARADA'],
  ['99', 'EX', 'Exterior', 'NAO DECLARADA'],
].map(([id, uf, text, region]) => ({
  id: id as string,
  uf: uf as string,
  text: text as string,
  region: region as string,
}));
